"""musicgraph: a GraphQL server over a listening graph, with a graph-based music recommender."""

__version__ = "0.1.0"
__all__ = ["__version__"]
