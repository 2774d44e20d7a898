"""Audio work with no business in it: decode checks, transcodes, stream copies, waveforms (PyAV's FFmpeg)."""
