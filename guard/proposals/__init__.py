"""From the model's signals to proposals: the sizing policy (`policy`) and the live pipeline (`pipeline`)."""
