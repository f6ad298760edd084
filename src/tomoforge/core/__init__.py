"""Pure array algorithms on torch tensors: no files, no project, no cluster."""
