"""segmentation model."""
