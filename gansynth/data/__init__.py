"""Data stage: folder scan and validation, decode cache, built-in datasets."""

from gansynth.data.dataset import RESOLUTIONS, ImageDataset, read_dataset_info
from gansynth.data.folder import IMAGE_EXTENSIONS, describe_skipped, scan_folder
from gansynth.data.load import cache_root, check_resolution, is_builtin, load_dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "RESOLUTIONS",
    "ImageDataset",
    "cache_root",
    "check_resolution",
    "describe_skipped",
    "is_builtin",
    "load_dataset",
    "read_dataset_info",
    "scan_folder",
]
