"""The dataset floor shared by the check, the batches and the audit.

Discovery of class folders and files (Keras' ``flow_from_directory`` order), listings with the
problems met on the way, header records of single files, deterministic header sampling, and the
tally that turns records into data findings. Nothing here imports the config, the stages or any
capability above it: a config is read through its attributes only.
"""
