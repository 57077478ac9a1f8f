"""``python -m positronic.vendors.lerobot.train`` and ``torchrun -m positronic.vendors.lerobot.train``: the trainer
under the module path it had before the stages got their own packages, for scripts that still run it so. The trainer
itself is ``positronic.vendors.lerobot.training.train`` (console script ``positronic-lerobot-train``)."""

from positronic.vendors.lerobot.training.train import main

if __name__ == '__main__':
    main()
