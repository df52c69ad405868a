"""Moving labeled data in from other tools: Label Studio task JSON today."""
