from sonorad.cli import main

raise SystemExit(main())
