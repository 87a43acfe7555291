# Containers (docs/docker.md): the JetPack 6.2 and JetPack 7.2 images for the Orin devkit, the NGC TensorRT image for an
# x86 GPU host. Build context is the repository root; docker/Dockerfile.*.dockerignore trims it.
DOCKER ?= docker
JETSON_IMAGE ?= orin-trt:jetson
JETSON7_IMAGE ?= orin-trt:jetson7
X86_IMAGE ?= orin-trt:x86
L4T_IMAGE ?= nvcr.io/nvidia/l4t-jetpack:r36.4.0
JP7_IMAGE ?= nvcr.io/nvidia/cuda:13.2.0-cudnn-runtime-ubuntu24.04
TRT_IMAGE ?= nvcr.io/nvidia/tensorrt:24.08-py3

# The devkit's own tools and state, read-only: power state and tegrastats readings come from the host.
JETSON_HOST_TOOLS = -v /usr/bin/tegrastats:/usr/bin/tegrastats:ro \
	-v /usr/sbin/nvpmodel:/usr/sbin/nvpmodel:ro -v /etc/nvpmodel.conf:/etc/nvpmodel.conf:ro \
	-v /var/lib/nvpmodel:/var/lib/nvpmodel:ro -v /usr/bin/jetson_clocks:/usr/bin/jetson_clocks:ro \
	-v /etc/nv_tegra_release:/etc/nv_tegra_release:ro
# --runtime nvidia brings the GPU and JetPack's libraries in; --privileged lets tegrastats and
# jetson_clocks read the power rails and clocks. The checkout is mounted over the image's copy,
# so engines/, calib/ and the history stay on the host between nights.
JETSON_RUN = $(DOCKER) run --rm --runtime nvidia --privileged --network host --ipc host $(JETSON_HOST_TOOLS) \
	-v $(CURDIR):/opt/orin-trt -w /opt/orin-trt $(JETSON_IMAGE)
X86_RUN = $(DOCKER) run --rm --gpus all --ipc host -v $(CURDIR):/opt/orin-trt -w /opt/orin-trt $(X86_IMAGE)

.PHONY: docker-build-jetson docker-build-jetson7 docker-build-x86 docker-engine-jetson docker-engine-x86 docker-profile-jetson docker-nightly

docker-build-jetson:
	DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile.jetson --build-arg L4T_IMAGE=$(L4T_IMAGE) -t $(JETSON_IMAGE) .

# The JetPack 7.2 line (L4T r39.2, TensorRT 10.16); run it with any docker-* target and JETSON_IMAGE=$(JETSON7_IMAGE).
docker-build-jetson7:
	DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile.jetson7 --build-arg JP7_IMAGE=$(JP7_IMAGE) -t $(JETSON7_IMAGE) .

docker-build-x86:
	DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile.x86 --build-arg TRT_IMAGE=$(TRT_IMAGE) -t $(X86_IMAGE) .

docker-engine-jetson:
	$(JETSON_RUN) engine $(ARGS)

docker-profile-jetson:
	$(JETSON_RUN) profile $(ARGS)

docker-engine-x86:
	$(X86_RUN) engine $(ARGS)

docker-nightly:
	$(JETSON_RUN) nightly --matrix $(MATRIX) $(if $(HISTORY),--history $(HISTORY))
