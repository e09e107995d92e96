# The one script kerberos-bot runs (mode = "full"): every value arrives as a bound parameter, and
# ValidateSet refuses any cmdlet but the module's own on the host itself.
param(
    [Parameter(Mandatory = $true)]
    [ValidateSet('Get-AzureAdKerberosServer', 'Set-AzureADKerberosServer',
        'Remove-AzureADKerberosServerTrustedDomainObject', 'Remove-AzureAdKerberosServer',
        'Get-AzureADKerberosServerEndpoint', 'Set-AzureADKerberosServerEndpoint')]
    [string]$Cmdlet,
    [hashtable]$Parameters = @{},
    [string[]]$Switches = @(),
    [System.Management.Automation.PSCredential]$DomainCredential,
    [System.Management.Automation.PSCredential]$CloudCredential,
    [string]$MinimumVersion = '0.0',
    [Nullable[int]]$Endpoint = $null,
    [bool]$Report = $false
)
$ErrorActionPreference = 'Stop'
$ModuleName = 'AzureADHybridAuthenticationManagement'
try {
    Import-Module -Name $ModuleName -MinimumVersion $MinimumVersion -ErrorAction Stop
} catch {
    $found = Get-Module -ListAvailable -Name $ModuleName | Sort-Object Version -Descending | Select-Object -First 1
    if ($found) {
        throw "kerberos-bot: module $ModuleName $($found.Version) is older than the required $MinimumVersion"
    }
    throw "kerberos-bot: module $ModuleName is not installed"
}
$credentials = @{}
if ($DomainCredential) { $credentials.DomainCredential = $DomainCredential }
if ($CloudCredential) { $credentials.CloudCredential = $CloudCredential }
function Invoke-KerberosCmdlet([string]$Command, [hashtable]$Arguments) {
    $info = Get-Command -Name $Command -Module $ModuleName
    $all = @{} + $Arguments
    foreach ($key in $credentials.Keys) {
        if ($info.Parameters.ContainsKey($key)) { $all[$key] = $credentials[$key] }
    }
    # A remoting session cannot answer a confirmation prompt: the cmdlet would fail instead of running.
    # The approval in Slack is the confirmation.
    if ($info.Parameters.ContainsKey('Confirm')) { $all['Confirm'] = $false }
    & $info @all
}
if ($null -ne $Endpoint) {
    Invoke-KerberosCmdlet 'Set-AzureADKerberosServerEndpoint' @{ TargetEndpoint = $Endpoint } | Out-Null
}
$arguments = @{} + $Parameters
foreach ($switch in $Switches) { $arguments[$switch] = $true }
$result = Invoke-KerberosCmdlet $Cmdlet $arguments
if ($Report) {
    try {
        $result = Invoke-KerberosCmdlet 'Get-AzureAdKerberosServer' @{ Domain = $Parameters.Domain }
    } catch {
        # the change above did run: say so instead of failing the whole call
        $result = @{ KerberosBotReadBackFailed = "$($_.Exception.Message)" }
    }
}
if ($null -ne $result) { ConvertTo-Json -InputObject $result -Depth 5 -Compress }
