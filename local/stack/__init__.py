"""The whole AWS side of template.yaml on one machine (offline_stack.OfflineStack) and its parts. Kept free of
imports: `python -m local token|nightly|down` read state_file without loading the stack."""
