"""Read side: the stream model, decoders and the questions asked of a stream."""
