"""torchvision model definitions copied for the test oracle (see each module's header); torch is required."""
