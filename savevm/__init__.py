"""Write side: QEMU's savevm/migration save path, in Python."""
