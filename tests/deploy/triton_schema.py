"""The part of Triton's ModelConfig (model_config.proto) that `orin-trt deploy` writes, as a protobuf
message class: parsing config.pbtxt with it rejects unknown fields, wrong types and bad enum values,
as tritonserver does when it loads the model."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# Triton's DataType and ModelInstanceGroup.Kind enums, numbered as in model_config.proto.
DATA_TYPES = ["TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_INT8",
              "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_STRING",
              "TYPE_BF16"]
KINDS = ["KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"]

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED


def _message(file: descriptor_pb2.FileDescriptorProto, name: str,
             fields: list[tuple[str, int, int, int, str | None]]) -> None:
    msg = file.message_type.add(name=name)
    for field_name, number, label, ftype, type_name in fields:
        f = msg.field.add(name=field_name, number=number, label=label, type=ftype)
        if type_name:
            f.type_name = type_name


def model_config_class() -> type:
    file = descriptor_pb2.FileDescriptorProto(name="orin_trt_test_model_config.proto", package="inference",
                                              syntax="proto3")
    enum = file.enum_type.add(name="DataType")
    for i, n in enumerate(DATA_TYPES):
        enum.value.add(name=n, number=i)
    _message(file, "ModelInput", [
        ("name", 1, OPT, F.TYPE_STRING, None), ("data_type", 2, OPT, F.TYPE_ENUM, ".inference.DataType"),
        ("dims", 4, REP, F.TYPE_INT64, None), ("is_shape_tensor", 6, OPT, F.TYPE_BOOL, None),
        ("optional", 8, OPT, F.TYPE_BOOL, None)])
    _message(file, "ModelOutput", [
        ("name", 1, OPT, F.TYPE_STRING, None), ("data_type", 2, OPT, F.TYPE_ENUM, ".inference.DataType"),
        ("dims", 3, REP, F.TYPE_INT64, None), ("label_filename", 4, OPT, F.TYPE_STRING, None),
        ("is_shape_tensor", 6, OPT, F.TYPE_BOOL, None)])
    group = file.message_type.add(name="ModelInstanceGroup")
    kind = group.enum_type.add(name="Kind")
    for i, n in enumerate(KINDS):
        kind.value.add(name=n, number=i)
    for field_name, number, label, ftype, type_name in [
            ("name", 1, OPT, F.TYPE_STRING, None), ("count", 2, OPT, F.TYPE_INT32, None),
            ("gpus", 3, REP, F.TYPE_INT32, None), ("kind", 4, OPT, F.TYPE_ENUM, ".inference.ModelInstanceGroup.Kind"),
            ("profile", 5, REP, F.TYPE_STRING, None)]:
        f = group.field.add(name=field_name, number=number, label=label, type=ftype)
        if type_name:
            f.type_name = type_name
    _message(file, "ModelDynamicBatching", [
        ("preferred_batch_size", 1, REP, F.TYPE_INT32, None),
        ("max_queue_delay_microseconds", 2, OPT, F.TYPE_UINT64, None)])
    _message(file, "ModelConfig", [
        ("name", 1, OPT, F.TYPE_STRING, None), ("platform", 2, OPT, F.TYPE_STRING, None),
        ("max_batch_size", 4, OPT, F.TYPE_INT32, None),
        ("input", 5, REP, F.TYPE_MESSAGE, ".inference.ModelInput"),
        ("output", 6, REP, F.TYPE_MESSAGE, ".inference.ModelOutput"),
        ("instance_group", 7, REP, F.TYPE_MESSAGE, ".inference.ModelInstanceGroup"),
        ("default_model_filename", 8, OPT, F.TYPE_STRING, None),
        ("dynamic_batching", 11, OPT, F.TYPE_MESSAGE, ".inference.ModelDynamicBatching"),
        ("backend", 17, OPT, F.TYPE_STRING, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))
