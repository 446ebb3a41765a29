"""Raw interactions -> item vocabulary, Hugging Face tokenizer files, chronological sequences, split."""
