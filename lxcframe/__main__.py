from lxcframe.cli.main import main

raise SystemExit(main())
