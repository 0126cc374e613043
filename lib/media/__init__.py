"""Media intake and pixels: images (the one upload intake), video (streamed decode with
limits), masks (geometry, effects, RLE, exports). Imports only lib.core."""
