from pmfin.cli import main

main()
