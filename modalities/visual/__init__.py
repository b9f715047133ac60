"""The visual branch: face detection and tracking, margin crops, and a vision-transformer encoder."""
