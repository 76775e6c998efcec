from tiedtransformer.cli import main

main()
