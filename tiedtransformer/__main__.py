from tiedtransformer.cli import run

run()
