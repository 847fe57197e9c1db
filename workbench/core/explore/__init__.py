"""Why the model says what it says: attributions, nearest training sentences, two runs compared."""
