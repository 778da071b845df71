"""The networks: generator G, discriminator D, projection heads F."""
