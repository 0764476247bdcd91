"""Capturing a device: the capture signal and its layout (:mod:`.signal`), and playing it
through an interface while recording the device (:mod:`.recorder`)."""
