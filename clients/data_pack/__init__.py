"""`effcap data pack`: the datasets people hold (image folders, MNIST IDX, CIFAR binaries, Parquet/Arrow
tables) turned into the one packed format the server reads (see effcap.capacity.data.packed_format).

Each source format has its own reader module returning a PackedDataset; writer.py writes it. Nothing
here imports torch; numpy, safetensors, Pillow and pyarrow come with the `effcap[data]` extra and are
imported only when a pack runs, so the light client install still loads the CLI.
"""
