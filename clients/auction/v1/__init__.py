"""Generated from proto/auction/v1 by proto/generate.py. DO NOT EDIT."""
