from sddc_backup.app import main

main()
