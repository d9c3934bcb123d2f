from akhbar.service.cli import main

main()
