// The RapidFire.Cli tool's `rapidfire` command: src/Host's program, installed by `dotnet tool install`.
return RapidFire.Host.Cli.RapidFireCli.RunConsole(args);
