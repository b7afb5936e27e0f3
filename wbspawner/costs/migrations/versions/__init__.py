"""The accounting schema's revisions, oldest first (``vNNNN_<slug>.py``)."""
