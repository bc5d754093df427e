"""provenance: whose behaviour does a language model carry?

Runs probe batteries against a candidate model, the reference models it may have learned
from and control models believed independent, and measures how much closer the candidate
comes to each reference than independent models do, with confidence intervals.

The flow of an audit (each arrow a plain function over plain data)::

    audit spec -> models -> batteries -> collect -> store -> score -> stats -> report
"""

__version__ = "0.1.0"
