from effnet.cli import main

raise SystemExit(main())
