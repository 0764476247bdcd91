"""Live monitoring: a PortAudio duplex stream running the engine in its callback."""
