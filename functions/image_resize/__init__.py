"""image_resize: resized renditions of images uploaded to S3."""
