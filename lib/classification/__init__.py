"""Scene classification: classifiers, CAMs with faithfulness, video scenes."""
