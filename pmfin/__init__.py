"""pmfin: the finance-operations command line of PenguinMails."""

__version__ = "0.1.0"
