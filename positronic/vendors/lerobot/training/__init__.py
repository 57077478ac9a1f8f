"""Training: the ACT trainer and what feeds it (``positronic-lerobot-train``)."""
