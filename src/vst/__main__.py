from vst.cli import main

main()
