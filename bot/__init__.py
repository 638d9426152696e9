"""faqbot: answers developers' questions from an FAQ in Slack and turns the rest into tickets."""

__version__ = "0.1.0"
__all__ = ["__version__"]
