"""Image classification data and metrics: ImageNet-style labelled folders, built-in held-out crops,
and top-k agreement / accuracy of logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..processing.classification import topk_indices
from ..processing.image import list_images
from .image_data import heldout_images

BUILTIN_EVAL_CROPS = 8  # per held-out photo


def labelled_images(folder: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    """`<folder>/<class>/<image>` pairs with the class index. A class folder is named by the class index,
    the label, or one of the label's comma-separated synonyms (ImageNet labels read `tench, Tinca tinca`)."""
    folder = Path(folder)
    lookup: dict[str, int] = {}
    for i, name in enumerate(class_names):
        lookup.setdefault(str(i), i)
        for key in [name, *name.split(",")]:
            lookup.setdefault(key.strip().lower(), i)
    pairs = []
    for path in list_images(folder):
        rel = path.relative_to(folder)
        if len(rel.parts) != 2:
            raise PipelineError(f"{path}: a labelled folder holds <class>/<image>, one level deep")
        cls = rel.parts[0]
        if cls.lower() not in lookup:
            raise PipelineError(f"{folder / cls}: class folder matches no class index or label of the model "
                                f"({len(class_names)} classes, e.g. {class_names[0]!r})")
        pairs.append((path, lookup[cls.lower()]))
    return pairs


def builtin_heldout_crops(count_per_image: int = BUILTIN_EVAL_CROPS) -> list[np.ndarray]:
    """Deterministic crops of the held-out photos (never calibrated on): enough inputs for a top-k rate."""
    from ..processing.image import load_rgb

    rng = np.random.default_rng(1234)
    crops = []
    for path in heldout_images():
        img = load_rgb(path)
        h, w = img.shape[:2]
        crops.append(img)
        for _ in range(count_per_image - 1):
            frac = rng.uniform(0.35, 0.9)
            ch, cw = int(h * frac), int(w * frac)
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crops.append(np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw]))
    return crops


def agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> dict[str, float]:
    """How often the candidate's ranking agrees with the reference's, over rows of logits."""
    ref_k, cand_k = topk_indices(reference, k), topk_indices(candidate, k)
    top1 = float(np.mean(ref_k[:, 0] == cand_k[:, 0]))
    in_top5 = float(np.mean([r in c for r, c in zip(ref_k[:, 0], cand_k, strict=True)]))
    overlap = float(np.mean([len(set(r) & set(c)) / ref_k.shape[1] for r, c in zip(ref_k, cand_k, strict=True)]))
    return {"top1_agreement": top1, f"reference_top1_in_top{k}": in_top5, f"top{k}_overlap": overlap}


def accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 5) -> dict[str, float]:
    best = topk_indices(logits, k)
    return {"top1": float(np.mean(best[:, 0] == labels)),
            f"top{k}": float(np.mean([lab in row for lab, row in zip(labels, best, strict=True)]))}
