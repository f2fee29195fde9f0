using RapidFire.Host.Cli;

// The `rapidfire` command-line program (from a checkout; the RapidFire.Cli tool is the same entry).
return RapidFireCli.RunConsole(args);
