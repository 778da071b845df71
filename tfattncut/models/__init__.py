"""The networks: generator G, discriminator D, projection heads F, attention A; each module
also holds the builder that makes its network from a run's configuration."""
