"""Wire layer: the Kaitai grammar, its generated parser, QEMU wire constants and codecs."""
