"""Detection benchmark: COCO data and Detections, detector architectures and builders,
the inference job (this server or Ray), matching, COCO metrics, TIDE errors, reports."""
