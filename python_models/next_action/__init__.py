"""Next-action prediction: the next event of a user's session from the sequence so far
(LightGBM multiclass vs the most frequent next event and a first-order Markov chain)."""

from python_models.next_action.model import NextActionModel
from python_models.next_action.params import NextActionParams

__all__ = ["NextActionModel", "NextActionParams"]
