# Get-AzureAdKerberosServer for many domains in one session (mode = "full"), for a status of every domain:
# the host reads them in parallel, at most $Parallelism at a time, each in a runspace of its own (a read waits
# on a DC and on Entra, not on this host's processors). Every value arrives as a bound parameter. One JSON
# line per domain: {"Domain": ..., "Report": ...} or {"Domain": ..., "Error": ...}; a domain that fails
# never hides the others. A last line on the session: {"Session": {"PeakMemoryMB": n}}.
param(
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$')]
    [string[]]$Domains,
    [ValidateRange(1, 64)]
    [int]$Parallelism = 8,
    [System.Management.Automation.PSCredential]$DomainCredential,
    [System.Management.Automation.PSCredential]$CloudCredential,
    [string]$MinimumVersion = '0.0',
    [Nullable[int]]$Endpoint = $null
)
$ErrorActionPreference = 'Stop'
$ModuleName = 'AzureADHybridAuthenticationManagement'
$found = Get-Module -ListAvailable -Name $ModuleName | Sort-Object Version -Descending | Select-Object -First 1
if (-not $found) { throw "kerberos-bot: module $ModuleName is not installed" }
if ($found.Version -lt [version]$MinimumVersion) {
    throw "kerberos-bot: module $ModuleName $($found.Version) is older than the required $MinimumVersion"
}
$readOne = {
    param([string]$Domain, [string]$ModuleName, [string]$MinimumVersion, $Endpoint, $DomainCredential, $CloudCredential)
    $ErrorActionPreference = 'Stop'
    try {
        Import-Module -Name $ModuleName -MinimumVersion $MinimumVersion
        if ($null -ne $Endpoint) {
            Set-AzureADKerberosServerEndpoint -TargetEndpoint $Endpoint -Confirm:$false | Out-Null
        }
        $info = Get-Command -Name 'Get-AzureAdKerberosServer' -Module $ModuleName
        $arguments = @{ Domain = $Domain }
        if ($DomainCredential -and $info.Parameters.ContainsKey('DomainCredential')) {
            $arguments.DomainCredential = $DomainCredential
        }
        if ($CloudCredential -and $info.Parameters.ContainsKey('CloudCredential')) {
            $arguments.CloudCredential = $CloudCredential
        }
        $report = & $info @arguments
        ConvertTo-Json -Compress -Depth 6 -InputObject @{ Domain = $Domain; Report = $report }
    } catch {
        ConvertTo-Json -Compress -InputObject @{ Domain = $Domain; Error = "$($_.Exception.Message)" }
    }
}
$pool = [runspacefactory]::CreateRunspacePool(1, [Math]::Min($Parallelism, $Domains.Count))
$pool.Open()
try {
    $running = foreach ($domain in $Domains) {
        $shell = [powershell]::Create()
        $shell.RunspacePool = $pool
        $values = @{
            Domain = $domain; ModuleName = $ModuleName; MinimumVersion = $MinimumVersion; Endpoint = $Endpoint
            DomainCredential = $DomainCredential; CloudCredential = $CloudCredential
        }
        [void]$shell.AddScript($readOne.ToString()).AddParameters($values)
        [pscustomobject]@{ Shell = $shell; Handle = $shell.BeginInvoke() }
    }
    foreach ($one in $running) {
        try { $one.Shell.EndInvoke($one.Handle) } finally { $one.Shell.Dispose() }
    }
    # the session's own peak commit (what WinRM's MaxMemoryPerShellMB quota counts), for kerberos-bot check
    $session = [System.Diagnostics.Process]::GetCurrentProcess()
    $peak = [int]($session.PeakPagedMemorySize64 / 1048576)
    ConvertTo-Json -Compress -InputObject @{ Session = @{ PeakMemoryMB = $peak } }
} finally {
    $pool.Close()
    $pool.Dispose()
}
