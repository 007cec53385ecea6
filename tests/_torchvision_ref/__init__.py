"""torchvision model definitions copied for the test oracle (see each module's header;
_extract.py regenerates them); torch is required."""
