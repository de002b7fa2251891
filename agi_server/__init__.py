"""agi-server: FastAGI + AMI call-center modules for Asterisk / FreePBX."""

__version__ = "0.1.0"
