"""The method: configurations, sine/Lorenz data, models, optimiser, training, probes.

Imports nothing from the other layers of ``bijepa_nb``. Read it to understand every
number in the book.
"""
