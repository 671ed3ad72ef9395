from core_bidder.main import main

main()
