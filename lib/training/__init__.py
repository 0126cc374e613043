"""Training: classifiers and detectors (train), the demo segmenter (train_sam). May
import the domain packages it trains for."""
