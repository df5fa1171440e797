from n2d2py.cli import main

main()
