"""The encryption barrier: everything above sees plaintext, everything below ciphertext."""
